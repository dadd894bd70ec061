resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb-example'
  location: 'westeurope'
  sku: {
    name: 'Premium'
    tier: 'Premium'
    capacity: 1
  }
  properties: {
    minimumTlsVersion: '1.2'
  }
}
