// Azure Policy that makes the EU residency promise hold for everything in the subscription, not only
// for what these templates create: resources and resource groups outside the allowed EU regions are
// denied at deployment time. Both regional deployments write the same assignments (same names), so
// deploying either region keeps them in place.
targetScope = 'subscription'

@description('EU regions resources and resource groups may be created in.')
@allowed([
  'northeurope'
  'westeurope'
  'francecentral'
  'germanywestcentral'
  'swedencentral'
  'italynorth'
  'polandcentral'
  'spaincentral'
])
param allowedLocations array

// Built-in "Allowed locations" and "Allowed locations for resource groups" definitions.
var allowedLocationsDefinitionId = tenantResourceId('Microsoft.Authorization/policyDefinitions', 'e56962a6-4747-49cd-b67b-bf8b01975c4c')
var allowedResourceGroupLocationsDefinitionId = tenantResourceId('Microsoft.Authorization/policyDefinitions', 'e765b5de-1225-4ba3-bd56-1ac6695af988')

resource allowedLocationsAssignment 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: 'connecthub-allowed-locations'
  properties: {
    displayName: 'ConnectHub: resources only in EU regions'
    description: 'Denies resources outside the EU regions ConnectHub promises to keep data in. Global resources (Traffic Manager) are exempt by the definition itself.'
    policyDefinitionId: allowedLocationsDefinitionId
    enforcementMode: 'Default'
    parameters: {
      listOfAllowedLocations: {
        value: allowedLocations
      }
    }
    nonComplianceMessages: [
      {
        message: 'ConnectHub keeps all data in EU regions; this location is not allowed.'
      }
    ]
  }
}

resource allowedResourceGroupLocationsAssignment 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: 'connecthub-allowed-rg-locations'
  properties: {
    displayName: 'ConnectHub: resource groups only in EU regions'
    description: 'Resource group metadata stays in the EU as well.'
    policyDefinitionId: allowedResourceGroupLocationsDefinitionId
    enforcementMode: 'Default'
    parameters: {
      listOfAllowedLocations: {
        value: allowedLocations
      }
    }
    nonComplianceMessages: [
      {
        message: 'ConnectHub resource groups must be created in EU regions.'
      }
    ]
  }
}

output allowedLocationsAssignmentId string = allowedLocationsAssignment.id
